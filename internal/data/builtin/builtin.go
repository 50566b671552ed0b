// Package builtin registers the built-in connectors into data.Builtin.
// It has no API: import it for its side effect,
//
//	import _ "github.com/sluicehq/sluice/internal/data/builtin"
//
// so that the pipeline parser and the engine find every connector the
// binary ships with, while each connector package stays independent.
package builtin

import (
	_ "github.com/sluicehq/sluice/internal/data/csv"      // the csv connector
	_ "github.com/sluicehq/sluice/internal/data/httpapi"  // the http connector
	_ "github.com/sluicehq/sluice/internal/data/jsonl"    // the jsonl connector
	_ "github.com/sluicehq/sluice/internal/data/mysql"    // the mysql connector
	_ "github.com/sluicehq/sluice/internal/data/nats"     // the nats connector
	_ "github.com/sluicehq/sluice/internal/data/parquet"  // the parquet connector
	_ "github.com/sluicehq/sluice/internal/data/postgres" // the postgres connector
	_ "github.com/sluicehq/sluice/internal/data/sqlitedb" // the sqlite connector
)
