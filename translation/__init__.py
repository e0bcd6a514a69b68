"""translation: GNMT and Transformer on WMT (training and LoadGen inference). Not built yet."""
