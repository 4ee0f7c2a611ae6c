"""Demo data generators: real handwritten digits, synthesized spoken digits and background noise.

They write a folder of media files plus a `metadata.csv` that the ingest stage reads like any user data set.
"""
