"""Offline data: text corpora (`text_data`, with the shipped files in
`corpora/`), real time series (`series_data`) and the rendered shapes world
(`shapes_world`).  Nothing here downloads; TFDS is used only with data already
on disk."""
