"""The command line: `python -m bot` and `intake-bot`; main.py parses, the others run."""
