SET lock_timeout = '5s'; SET statement_timeout = '30s';
CREATE TABLE bookings (room int, during tstzrange, EXCLUDE USING gist (room WITH =, during WITH &&));
