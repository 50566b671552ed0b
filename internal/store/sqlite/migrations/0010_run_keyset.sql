-- 0010: keyset paging of runs. ListRuns orders by (created_at, id), newest
-- first, and a page continues after the (created_at, id) of the previous
-- page's last run. Each index ends in (created_at, id) so that SQLite walks
-- it backwards from the cursor and stops after the page: the cost of a page
-- does not grow with the number of runs or the depth of the page. They
-- replace the indexes of 0001, which ended in created_at alone (and so in
-- rowid), and add the namespace-only filter, which had none.

DROP INDEX runs_by_created;
DROP INDEX runs_by_pipeline;
DROP INDEX runs_by_state;

CREATE INDEX runs_by_created ON runs (created_at, id);
CREATE INDEX runs_by_namespace ON runs (namespace, created_at, id);
CREATE INDEX runs_by_pipeline ON runs (namespace, pipeline, created_at, id);
CREATE INDEX runs_by_state ON runs (state, created_at, id);
