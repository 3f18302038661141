"""Making encoders offline: WordPiece vocabularies, fresh BERT folders, MLM runs."""
