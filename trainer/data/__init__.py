"""Reading and checking the training table. ``csv_file`` reads a CSV's header and lines, refusing
what pandas would otherwise turn into quietly wrong data; ``dataset`` gives each column its role
(feature, key, ignored or label), checks the values, makes the built-in synthetic data and splits
the rows into training and validation; ``missing`` fills empty cells with each feature's training
median."""
