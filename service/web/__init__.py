"""The operator page served at ``/``: static HTML, CSS and plain JavaScript, no build
step and nothing fetched from the internet (the files are package data)."""
