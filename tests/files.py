"""Small files the tests write for the readers to read."""

import csv


def write_csv(path, header, rows):
    """A UTF-8 CSV with a `header` row, then `rows`; returns the path as a str."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)
