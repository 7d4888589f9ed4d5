-- Redshift's COPY cannot write the object's key into a column; this object's rows get it here.
UPDATE sparkify_batch SET {{ source_key_column }} = %(s3_key)s WHERE {{ source_key_column }} IS NULL;
