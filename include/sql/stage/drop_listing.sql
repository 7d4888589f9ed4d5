DROP TABLE sparkify_listing;
