"""What a run leaves behind: atomic files, terminal, HTML, JUnit, Markdown summaries, comparisons, trends."""
