-- Number location (PostgreSQL): 7-digit mobile prefix → province / city
-- (regions ids) and operator, filled by `voxdial location import`; the
-- version row is bumped by every change so each process reloads its
-- in-memory table (src/location/). Area codes of landlines ship in the code.
CREATE TABLE mobile_prefixes (
    prefix VARCHAR(7) COLLATE "C" PRIMARY KEY,
    province_id BIGINT NOT NULL DEFAULT 0,
    city_id BIGINT NOT NULL DEFAULT 0,
    operator BIGINT NOT NULL DEFAULT 0,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);
CREATE TABLE location_version (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);
INSERT INTO location_version (id, version, updated_at) VALUES (1, 0, '1970-01-01 00:00:00');
