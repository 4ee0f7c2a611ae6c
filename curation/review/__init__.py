"""Labelers review flagged samples: a store of decisions (SQLite), a web app to make them, the exports the
build stage reads, agreement between labelers, and Label Studio interop."""
