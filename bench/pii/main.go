// Command pii evaluates sluice's personal-data recognisers on a labelled
// set generated deterministically (valid and invalid identifiers and
// look-alikes such as order numbers, ISBNs and UUIDs) and prints precision
// and recall per kind as a Markdown table, then what the column-level
// Detector concludes about a column of each category.
//
//	go run ./bench/pii
package main

import "os"

func main() {
	set := generate()
	writeTable(os.Stdout, set, evaluate(set))
	writeColumns(os.Stdout, evaluateColumns(set))
}
