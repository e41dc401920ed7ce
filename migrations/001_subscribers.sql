-- 001: subscribers and their identity indexes.
--
-- A subscriber is stored whole as JSONB: the serde form of sichss::store::Subscriber, the
-- same record the JSON-lines export writes. Two index tables map every IMPI and IMPU to
-- the IMSI of the one subscriber that owns it; their primary keys make an identity
-- conflict a unique violation, refused atomically inside the writing transaction. Keys
-- use the "C" collation so that listing pages in bytewise IMSI order, as sled does.

CREATE TABLE subscribers (
    imsi       text COLLATE "C" PRIMARY KEY,
    record     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriber_impis (
    impi text COLLATE "C" PRIMARY KEY,
    imsi text COLLATE "C" NOT NULL REFERENCES subscribers (imsi) ON DELETE CASCADE
);
CREATE INDEX subscriber_impis_by_imsi ON subscriber_impis (imsi);

CREATE TABLE subscriber_impus (
    impu text COLLATE "C" PRIMARY KEY,
    imsi text COLLATE "C" NOT NULL REFERENCES subscribers (imsi) ON DELETE CASCADE
);
CREATE INDEX subscriber_impus_by_imsi ON subscriber_impus (imsi);
