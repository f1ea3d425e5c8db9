package main

import "testing"

func TestSchedThreadsWant(t *testing.T) {
	for _, c := range []struct {
		name    string
		t       schedThreads
		setting int
		backups bool
		n       int
		ok      bool
	}{
		{"auto halves the CPUs", schedThreads{cpus: 8}, 0, false, 4, true},
		{"auto rounds down", schedThreads{cpus: 3}, 0, false, 1, true},
		{"auto keeps one thread", schedThreads{cpus: 1}, 0, false, 1, true},
		{"backups get a second thread", schedThreads{cpus: 2}, 0, true, 2, true},
		{"backups on one CPU stay at one", schedThreads{cpus: 1}, 0, true, 1, true},
		{"backups add nothing to half of many CPUs", schedThreads{cpus: 8}, 0, true, 4, true},
		{"a setting wins", schedThreads{cpus: 8}, 6, false, 6, true},
		{"a setting wins over backups", schedThreads{cpus: 2}, 1, true, 1, true},
		{"a setting may exceed the CPUs", schedThreads{cpus: 2}, 4, false, 4, true},
		{"GOMAXPROCS in the environment wins over auto", schedThreads{cpus: 8, envSet: true}, 0, true, 0, false},
		{"a setting wins over GOMAXPROCS", schedThreads{cpus: 8, envSet: true}, 2, false, 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, ok := c.t.want(c.setting, c.backups)
			if n != c.n || ok != c.ok {
				t.Errorf("want(%d, %v) = %d, %v; want %d, %v", c.setting, c.backups, n, ok, c.n, c.ok)
			}
		})
	}
}
