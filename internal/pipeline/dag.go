package pipeline

import "strings"

// Task returns the named task, or nil.
func (p *Pipeline) Task(name string) *Task {
	for _, t := range p.Tasks {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Order returns the tasks in a topological order: every task comes after the
// tasks it needs, and among tasks that are ready at the same point the one
// declared first in the file comes first, so the order is stable and
// predictable from reading the file. Parse rejects cycles; for a Pipeline
// built by hand with a cycle, the tasks on it follow the rest in file order.
func (p *Pipeline) Order() []*Task {
	index := make(map[string]int, len(p.Tasks))
	for i, t := range p.Tasks {
		index[t.Name] = i
	}
	waiting := make([]int, len(p.Tasks)) // unfinished needs per task
	down := make([][]int, len(p.Tasks))
	for i, t := range p.Tasks {
		for _, n := range t.Needs {
			if j, ok := index[n]; ok {
				waiting[i]++
				down[j] = append(down[j], i)
			}
		}
	}
	out := make([]*Task, 0, len(p.Tasks))
	done := make([]bool, len(p.Tasks))
	// Pipelines are small (tens of tasks): a scan for the first ready task
	// keeps file order without a heap.
	for len(out) < len(p.Tasks) {
		next := -1
		for i := range p.Tasks {
			if !done[i] && waiting[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			for i, t := range p.Tasks {
				if !done[i] {
					out = append(out, t)
				}
			}
			break
		}
		done[next] = true
		out = append(out, p.Tasks[next])
		for _, d := range down[next] {
			waiting[d]--
		}
	}
	return out
}

// Downstream returns the names of the tasks that directly need the named
// task, in file order: the tasks whose trigger rule the named task's outcome
// feeds.
func (p *Pipeline) Downstream(name string) []string {
	var out []string
	for _, t := range p.Tasks {
		for _, n := range t.Needs {
			if n == name {
				out = append(out, t.Name)
				break
			}
		}
	}
	return out
}

// cycles returns each cycle among tasks once, as the task names along it
// from upstream to downstream, starting and ending with the cycle's
// earliest-declared task. Needs naming unknown tasks are ignored.
func cycles(tasks []*Task) [][]string {
	index := make(map[string]int, len(tasks))
	for i, t := range tasks {
		index[t.Name] = i
	}
	const (
		unvisited = iota
		onStack
		finished
	)
	state := make([]int, len(tasks))
	var stack []int
	var found [][]string
	seen := map[string]bool{}
	// visit follows needs edges (downstream → upstream).
	var visit func(i int)
	visit = func(i int) {
		state[i] = onStack
		stack = append(stack, i)
		for _, n := range tasks[i].Needs {
			j, ok := index[n]
			if !ok {
				continue
			}
			switch state[j] {
			case unvisited:
				visit(j)
			case onStack:
				// stack from j to the top is a needs-path j ← ... ← i ← j.
				k := len(stack) - 1
				for stack[k] != j {
					k--
				}
				path := append([]int(nil), stack[k:]...)
				// Rotate so the earliest-declared task starts the cycle.
				m := 0
				for x := range path {
					if path[x] < path[m] {
						m = x
					}
				}
				path = append(path[m:], path[:m]...)
				// path follows needs; reverse it to read upstream → downstream.
				names := make([]string, 0, len(path)+1)
				names = append(names, tasks[path[0]].Name)
				for x := len(path) - 1; x >= 1; x-- {
					names = append(names, tasks[path[x]].Name)
				}
				names = append(names, tasks[path[0]].Name)
				key := strings.Join(names, "\x00")
				if !seen[key] {
					seen[key] = true
					found = append(found, names)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = finished
	}
	for i := range tasks {
		if state[i] == unvisited {
			visit(i)
		}
	}
	return found
}
