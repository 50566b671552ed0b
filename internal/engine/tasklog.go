package engine

import (
	"os"
	"sync"
)

// taskLog is an attempt's log file, created on its first write. Most tasks
// of a large DAG print nothing, and on a journaling file system creating a
// file costs more than all the rest of a task's bookkeeping; a log that was
// never written reads back as empty.
type taskLog struct {
	path string

	mu  sync.Mutex
	f   *os.File
	err error
}

func (l *taskLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil && l.err == nil {
		l.f, l.err = os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND|noFollow, logFileMode)
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.f.Write(p)
}

// Close closes the file if it was created.
func (l *taskLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}
