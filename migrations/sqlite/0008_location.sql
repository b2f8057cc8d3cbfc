-- Number location (SQLite): 7-digit mobile prefix → province / city (regions
-- ids) and operator, filled by `voxdial location import`; the version row is
-- bumped by every change so each process reloads its in-memory table
-- (src/location/). Area codes of landlines ship in the code.
CREATE TABLE mobile_prefixes (
    prefix TEXT PRIMARY KEY,               -- first 7 digits of an 11-digit mobile number
    province_id INTEGER NOT NULL DEFAULT 0,
    city_id INTEGER NOT NULL DEFAULT 0,
    operator INTEGER NOT NULL DEFAULT 0,   -- 1 移动 yd, 2 联通 lt, 3 电信 dx, 4 广电 gd; 0: by segment
    updated_at TEXT NOT NULL
);
CREATE TABLE location_version (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
INSERT INTO location_version (id, version, updated_at) VALUES (1, 0, '1970-01-01 00:00:00');
