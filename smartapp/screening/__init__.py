"""Population screening (`secondlook screen`): partition a Bulk Data export by patient, run the
engine per patient on Dask distributed, and write the coordinator's worklist."""
