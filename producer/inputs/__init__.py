"""The inputs room: where the vectors come from. sources.py gives the built-in synthetic data or a
CSV file as batches (matched to the model's features by name, paced); csv_reader.py reads the CSV
with the csv module and numpy alone, so the producer image needs no pandas."""
