"""Features stage: gold feature tables per game (group ``features``)."""
