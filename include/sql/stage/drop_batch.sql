DROP TABLE sparkify_batch;
DROP TABLE sparkify_batch_objects;
DROP TABLE sparkify_listing;
