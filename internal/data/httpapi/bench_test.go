package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
)

// BenchmarkHTTPSource reads 100k records served in pages of 1000 by a
// local server, the pages prepared in advance so the server costs little.
func BenchmarkHTTPSource(b *testing.B) {
	const total, size = 100_000, 1000
	pages := make([][]byte, total/size+2)
	for p := 1; p <= total/size+1; p++ {
		buf := []byte(`{"data":[`)
		for id := (p-1)*size + 1; id <= min(total, p*size); id++ {
			if id > (p-1)*size+1 {
				buf = append(buf, ',')
			}
			buf = fmt.Appendf(buf, `{"id":%d,"email":"user%d@example.com","country":"DE","score":%d.5,"active":true,"signed_up":"2024-05-01T10:30:00Z"}`, id, id, id%100)
		}
		pages[p] = append(buf, "]}"...)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		_, _ = w.Write(pages[p])
	}))
	defer srv.Close()
	c := NewConfig()
	c.URL, c.Records, c.AllowHosts = srv.URL, "data", []string{"127.0.0.1"}
	c.Pagination = &Pagination{Page: &Page{Param: "page", SizeParam: "per_page", Size: size}}
	env := testEnv(&quarantine{})
	env.BatchSize = data.DefaultBatchSize
	b.ReportAllocs()
	for b.Loop() {
		src, err := OpenSource(context.Background(), c, env)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			bt, err := src.Next(context.Background())
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += bt.Len
		}
		src.Close()
		if n != total {
			b.Fatalf("read %d records", n)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
