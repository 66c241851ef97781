"""The study commands and reads that the API calls, and what they tell listeners."""
