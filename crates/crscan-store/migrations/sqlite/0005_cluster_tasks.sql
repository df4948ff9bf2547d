-- Work that must run once per cluster, not once per node (a lifecycle run, a GC pass):
-- each node's scheduler claims the task's current slot (for example the interval
-- number since the epoch); the first insert wins, the others see the row and skip.
CREATE TABLE cluster_tasks (
    name TEXT NOT NULL,
    slot BIGINT NOT NULL,
    node TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (name, slot)
);
