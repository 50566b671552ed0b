// Command gen writes N generated customer records as CSV or JSONL, for the
// benchmarks. The output is deterministic for a given seed, streamed, and
// about 100 bytes a record.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

var (
	firsts    = []string{"Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luca"}
	lasts     = []string{"Muller", "Schmidt", "Dubois", "Martin", "Smith", "Johnson", "Rossi", "Garcia", "Novak", "Berg"}
	countries = []string{"DE", "FR", "US", "GB", "ES", "NL", "IT", "PL"}
	cities    = []string{"Berlin", "Paris", "Boston", "London", "Madrid", "Utrecht", "Rome", "Warsaw"}
	plans     = []string{"free", "pro", "team", "enterprise"}
)

func main() {
	n := flag.Int("n", 1_000_000, "number of records")
	format := flag.String("format", "csv", "csv or jsonl")
	out := flag.String("o", "-", "output file (- for stdout)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *format != "csv" && *format != "jsonl" {
		fmt.Fprintln(os.Stderr, "gen: -format must be csv or jsonl")
		os.Exit(2)
	}
	f := os.Stdout
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(*seed, 42))
	if *format == "csv" {
		w.WriteString("id,first_name,last_name,email,country,city,age,signup_date,plan,monthly_spend\n")
	}
	var b []byte
	for i := 1; i <= *n; i++ {
		first, last := firsts[r.IntN(len(firsts))], lasts[r.IntN(len(lasts))]
		c := r.IntN(len(countries))
		age := 14 + r.IntN(72)
		date := fmt.Sprintf("20%02d-%02d-%02d", 18+r.IntN(9), 1+r.IntN(12), 1+r.IntN(28))
		spend := strconv.FormatFloat(float64(r.IntN(50000))/100, 'f', 2, 64)
		email := first + "." + last + strconv.Itoa(i) + "@example.com"
		b = b[:0]
		if *format == "csv" {
			b = strconv.AppendInt(b, int64(i), 10)
			for _, s := range []string{first, last, email, countries[c], cities[c]} {
				b = append(b, ',')
				b = append(b, s...)
			}
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(age), 10)
			b = append(b, ',')
			b = append(b, date...)
			b = append(b, ',')
			b = append(b, plans[r.IntN(len(plans))]...)
			b = append(b, ',')
			b = append(b, spend...)
		} else {
			b = fmt.Appendf(b, `{"id":%d,"first_name":%q,"last_name":%q,"email":%q,"country":%q,"city":%q,"age":%d,"signup_date":%q,"plan":%q,"monthly_spend":%s}`,
				i, first, last, email, countries[c], cities[c], age, date, plans[r.IntN(len(plans))], spend)
		}
		b = append(b, '\n')
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
