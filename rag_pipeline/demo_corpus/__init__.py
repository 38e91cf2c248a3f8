"""The demo corpus: paper-like documents written for this project, rendered to PDF offline."""
