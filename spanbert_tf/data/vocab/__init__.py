"""A WordPiece vocabulary from your corpus: streaming word counts, tensorflow-text's learner,
the coverage report (`build_vocab.py`)."""
