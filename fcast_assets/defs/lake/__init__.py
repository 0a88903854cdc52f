"""Lake stage: lottery games, bronze draws, silver series, predictability profile (group ``lake``)."""
