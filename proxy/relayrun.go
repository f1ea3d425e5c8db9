package proxy

import "encoding/binary"

// runPlain lists the server messages the relay passes on untouched and
// without a look, whatever the request: rows, their descriptions, the
// completions of steps, COPY data. A run of them sits behind the first
// message of a typical answer in the same server read, and forward
// copies the run with one write instead of a header read, a lock and
// three buffer calls per message.
func runPlain(typ byte) bool {
	switch typ {
	case 'T', 'D', 'C', 'n', '1', '2', '3', 't', 's', 'I', 'd', 'c':
		return true
	}
	return false
}

// relayRun is what forward needs to take a run: whether it may, and what
// the relay would have done with each message of it.
type relayRun struct {
	// on: nothing in the request's answer needs a look (no plan to
	// consult).
	on bool
	// holdable: an inline relay that has shown nothing yet, which holds
	// back a run ending in a message that opens an answer (heldBack).
	holdable bool
	// countRows: add up CommandComplete's counts (query stats).
	countRows bool
	// rows is what the run's CommandCompletes counted.
	rows uint64
	// last is the run's last message type; 0 when the run stopped at
	// the first message.
	last byte
}

// runEnd returns how many bytes of buf, which starts with the body of a
// message of first bytes, make that body and the complete runPlain
// messages after it. The first message's count is its caller's.
func (r *relayRun) runEnd(buf []byte, first int) int {
	end := first
	for len(buf)-end >= 5 {
		typ := buf[end]
		if !runPlain(typ) {
			break
		}
		l := int(binary.BigEndian.Uint32(buf[end+1 : end+5]))
		if l < 4 || l > len(buf)-end-1 {
			// Malformed, or not all here: the relay's own read of the
			// header decides.
			break
		}
		if typ == 'C' && r.countRows {
			r.rows += tagRows(buf[end+5 : end+1+l][:min(l-4, 64)])
		}
		end += 1 + l
		r.last = typ
	}
	return end
}
