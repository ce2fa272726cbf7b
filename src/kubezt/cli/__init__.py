"""Command line: thin Typer commands over the library; rich is used only here."""
