"""recommendation: DLRM on Criteo Terabyte and Kaggle (training to AUC and LoadGen inference)."""
