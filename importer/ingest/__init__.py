"""The CSV import pipeline: read (reader), validate (validate), stage and merge (postgres,
sqlite), driven by pipeline.run, which importer.jobs.run_import calls for the queue."""
