"""Self-check helpers for the notebooks' exercises: they run the reader's function on
test cases and say what is wrong, in words."""
