"""Data sets a study reads: uploads and the path/built-in sources behind them."""
