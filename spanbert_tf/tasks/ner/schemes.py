"""Entity tag schemes: BIO (IOB2), IOB1 and IOBES tags <-> entity spans.

An entity is `(start, end, type)` over word positions, `end` EXCLUSIVE (the words are
`words[start:end]`), in every module of this package and in the JSON lines files.

* BIO (IOB2): `B-X` starts an entity, `I-X` continues one of type X; `I-X` after `O`
  or after another type is an error (strict: such a file is IOB1).
* IOB1 (the original CoNLL-2003 files): `I-X` starts an entity unless it continues
  one of type X; `B-X` only starts an entity right after one of the same type.
* IOBES: `S-X` a one-word entity, `B-X` (`I-X`)* `E-X` a longer one; anything else
  (an `I-`/`E-` not continuing a `B-X`, a `B-X` not closed by `E-X`) is an error.

A tag outside the scheme (`E-PER` in BIO, `PER`, `b-PER`) or a type outside the known
ones (when given) raises `TagError` ONCE, naming where it is and what was expected.

Example:
```python
tags_to_entities(["B-PER", "I-PER", "O", "B-LOC"], "bio")   # [(0, 2, 'PER'), (3, 4, 'LOC')]
entities_to_tags([(0, 2, "PER")], 3, "iobes")               # ['B-PER', 'E-PER', 'O']
```
"""

from spanbert_tf.errors import InputError

SCHEMES = ("bio", "iob1", "iobes")
_PREFIXES = {"bio": "BI", "iob1": "BI", "iobes": "BIES"}


class TagError(InputError):
    """A tag sequence that does not follow its scheme; the message says where."""


def split_tag(tag, scheme, where="", types=None):
    """(prefix, type) of one tag; ("O", None) for O. Raises TagError outside the scheme."""
    if tag == "O":
        return "O", None
    prefix, _, kind = tag.partition("-")
    if len(prefix) != 1 or prefix not in _PREFIXES[scheme] or not kind:
        allowed = ", ".join(f"{p}-TYPE" for p in _PREFIXES[scheme])
        raise TagError(f"{where}label {tag!r} is not a {scheme.upper()} tag "
                       f"(expected O, {allowed})")
    if types is not None and kind not in types:
        raise TagError(f"{where}label {tag!r}: type {kind!r} is not one of {sorted(types)}")
    return prefix, kind


def check_scheme(scheme):
    if scheme not in SCHEMES:
        raise InputError(f"unknown tag scheme {scheme!r}; expected one of {SCHEMES}")
    return scheme


def tags_to_entities(tags, scheme="bio", where=None, types=None):
    """The entities of one sentence's tags (see the module docstring for each scheme).

    `where(i)` gives the location of tag i for messages (e.g. "file.tsv:12: ").
    """
    check_scheme(scheme)
    where = where or (lambda i: f"tag {i + 1}: ")
    entities, start, current = [], None, None

    def close(end):
        if current is not None:
            entities.append((start, end, current))

    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag, scheme, where(i), types)
        if prefix == "O":
            if scheme == "iobes" and current is not None:
                raise TagError(f"{where(i)}'O' inside an IOBES entity of type {current} "
                               f"(started by B-{current}, expected I-/E-{current})")
            close(i)
            start = current = None
        elif scheme == "bio":
            if prefix == "B":
                close(i)
                start, current = i, kind
            elif current != kind:
                raise TagError(f"{where(i)}{tag!r} does not continue an entity of type {kind} "
                               "(BIO entities start with B-; IOB1 files need "
                               "--tag_scheme=iob1)")
        elif scheme == "iob1":
            if current != kind or (prefix == "B" and current == kind):
                close(i)
                start, current = i, kind
        else:  # iobes
            continuing = current == kind
            if prefix in "BS":
                if current is not None:
                    raise TagError(f"{where(i)}{tag!r} inside an IOBES entity of type "
                                   f"{current} (expected I-/E-{current})")
                if prefix == "S":
                    entities.append((i, i + 1, kind))
                else:
                    start, current = i, kind
            elif not continuing:
                raise TagError(f"{where(i)}{tag!r} does not continue a B-{kind} (IOBES)")
            elif prefix == "E":
                close(i + 1)
                start = current = None
    if scheme == "iobes" and current is not None:
        raise TagError(f"{where(len(tags) - 1)}IOBES entity of type {current} not closed "
                       f"by E-{current} at the end of the sentence")
    close(len(tags))
    return entities


def entities_to_tags(entities, length, scheme="bio"):
    """Tags of `length` words for non-overlapping `entities` (nested ones: use layers)."""
    check_scheme(scheme)
    tags = ["O"] * length
    previous_end = {}
    for start, end, kind in sorted(entities):
        if any(t != "O" for t in tags[start:end]):
            raise InputError(f"entities overlap at words {start}..{end - 1}: one tag column "
                             "holds flat entities only")
        if scheme == "bio":
            tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
        elif scheme == "iob1":
            first = "B" if previous_end.get(kind) == start else "I"
            tags[start:end] = [f"{first}-{kind}"] + [f"I-{kind}"] * (end - start - 1)
        elif end - start == 1:
            tags[start] = f"S-{kind}"
        else:
            tags[start:end] = ([f"B-{kind}"] + [f"I-{kind}"] * (end - start - 2)
                               + [f"E-{kind}"])
        previous_end[kind] = end
    return tags


def nesting_layers(entities):
    """Entities split into layers, innermost first: an entity's layer is one more than the
    deepest layer of the entities inside it (an identical span counts as inside the one of
    the two listed first). Raises InputError for two crossing entities."""
    placed = []   # (start, end, type, layer)
    for start, end, kind in sorted(entities, key=lambda e: (e[1] - e[0], e[0], e[2])):
        layer = 0
        for s, e, _, lay in placed:
            if start <= s and e <= end:
                layer = max(layer, lay + 1)
            elif s < end and start < e:
                raise InputError(f"entities ({s}, {e}) and ({start}, {end}) cross: "
                                 "they cannot be written as nested layers")
        placed.append((start, end, kind, layer))
    layers = [[] for _ in range(max((p[3] for p in placed), default=-1) + 1)]
    for start, end, kind, layer in placed:
        layers[layer].append((start, end, kind))
    return [sorted(layer) for layer in layers]


def outermost(entities):
    """The entities not inside another one (for a flat output); (kept, number dropped)."""
    ordered = sorted(entities, key=lambda e: (e[0], -(e[1] - e[0]), e[2]))
    kept, covered_to = [], -1
    for start, end, kind in ordered:
        if start >= covered_to:
            kept.append((start, end, kind))
            covered_to = end
    return kept, len(entities) - len(kept)
