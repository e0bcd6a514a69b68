"""recommendation: DLRM on Criteo (training and LoadGen inference). Not built yet."""
