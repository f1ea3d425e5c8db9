package main

import "testing"

func TestSchedThreadsWant(t *testing.T) {
	for _, c := range []struct {
		name    string
		t       schedThreads
		setting int
		n       int
		ok      bool
	}{
		{"auto halves the CPUs", schedThreads{cpus: 8}, 0, 4, true},
		{"auto rounds down", schedThreads{cpus: 3}, 0, 1, true},
		{"auto keeps one thread", schedThreads{cpus: 1}, 0, 1, true},
		{"a setting wins", schedThreads{cpus: 8}, 6, 6, true},
		{"a setting may exceed the CPUs", schedThreads{cpus: 2}, 4, 4, true},
		{"GOMAXPROCS in the environment wins over auto", schedThreads{cpus: 8, envSet: true}, 0, 0, false},
		{"a setting wins over GOMAXPROCS", schedThreads{cpus: 8, envSet: true}, 2, 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, ok := c.t.want(c.setting)
			if n != c.n || ok != c.ok {
				t.Errorf("want(%d) = %d, %v; want %d, %v", c.setting, n, ok, c.n, c.ok)
			}
		})
	}
}
