package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
)

func packet(code uint32, kv ...string) []byte {
	body := binary.BigEndian.AppendUint32(nil, code)
	for _, s := range kv {
		body = append(append(body, s...), 0)
	}
	if code>>16 == 3 {
		body = append(body, 0)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

func cancelPacket(pid uint32, key []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(12+len(key)))
	b = binary.BigEndian.AppendUint32(b, codeCancel)
	return append(binary.BigEndian.AppendUint32(b, pid), key...)
}

func TestReadStartupPacket(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		wantCode string
		check    func(*startupPacket) bool
	}{
		{"startup", packet(196608, "user", "bob", "database", "db", "options", "-c search_path=a,b --statement-timeout=5s"), "",
			func(p *startupPacket) bool {
				sp := p.sessionParams()
				return p.params["user"] == "bob" && sp["search_path"] == "a,b" && sp["statement_timeout"] == "5s" && sp["user"] == ""
			}},
		// The server applies options first, so a parameter of its own wins.
		{"parameter beats options", packet(196608, "user", "bob", "options", "-c DateStyle=German -c client_encoding=SQL_ASCII", "client_encoding", "UTF8"), "",
			func(p *startupPacket) bool {
				sp := p.sessionParams()
				return sp["client_encoding"] == "UTF8" && sp["datestyle"] == "German"
			}},
		{"ssl", packet(codeSSL), "", func(p *startupPacket) bool { return p.code == codeSSL }},
		{"cancel", cancelPacket(7, []byte{1, 2, 3, 4}), "", func(p *startupPacket) bool {
			return p.cancelPID == 7 && bytes.Equal(p.cancelKey, []byte{1, 2, 3, 4})
		}},
		{"protocol 2", packet(131072, "user", "bob"), pgerr.FeatureNotSupported, nil},
		{"no user", packet(196608, "database", "x"), pgerr.InvalidAuthorization, nil},
		{"too short", []byte{0, 0, 0, 4}, pgerr.ProtocolViolation, nil},
		{"too long", []byte{0, 1, 0, 0}, pgerr.ProtocolViolation, nil},
		{"missing value", append([]byte{0, 0, 0, 13, 0, 3, 0, 0}, 'u', 0, 0, 0, 0)[:13], pgerr.ProtocolViolation, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := readStartupPacket(bytes.NewReader(tt.in))
			if tt.wantCode != "" {
				if pgerr.SQLState(err) != tt.wantCode {
					t.Fatalf("want %s, got %v", tt.wantCode, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil && !tt.check(p) {
				t.Fatalf("unexpected packet %+v", p)
			}
		})
	}
}

// FuzzStartupPacket: any bytes either decode or fail with a SQLSTATE (or
// a plain short read), and never panic.
func FuzzStartupPacket(f *testing.F) {
	f.Add(packet(196608, "user", "u", "database", "d"))
	f.Add(packet(codeSSL))
	f.Add(packet(196613, "user", "u", "_pq_.x", "1"))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := readStartupPacket(bytes.NewReader(in))
		if err != nil {
			if pgerr.SQLState(err) == "" && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error without SQLSTATE: %v", err)
			}
			return
		}
		if p.code>>16 == 3 && p.params["user"] == "" {
			t.Fatal("accepted a startup packet without a user")
		}
	})
}

func TestParamSetSync(t *testing.T) {
	server := map[string]string{"application_name": "", "DateStyle": "ISO, MDY", "server_version": "15", "TimeZone": "UTC"}
	p := newParamSet(map[string]string{"application_name": "app", "datestyle": "ISO, DMY", "search_path": "a", "TIMEZONE": "Asia/Tokyo"})
	got := map[string]string{}
	for typ, body := range wire.Bodies(p.appendReported(nil, server)) {
		var m pgproto3.ParameterStatus
		if err := m.Decode(body); typ != 'S' || err != nil {
			t.Fatalf("reported a %c message (%v)", typ, err)
		}
		got[m.Name] = m.Value
	}
	if len(got) != len(server) || got["application_name"] != "app" || got["DateStyle"] != "ISO, DMY" || got["server_version"] != "15" ||
		got["TimeZone"] != "Asia/Tokyo" {
		t.Fatalf("reported %v", got)
	}
	if _, ok := got["search_path"]; ok {
		t.Fatal("reported a parameter the server does not report")
	}
	if newParamSet(map[string]string{"A": "1", "b": "2"}).hash != newParamSet(map[string]string{"b": "2", "a": "1"}).hash {
		t.Fatal("hash depends on order or case")
	}
	// Name and value are delimited: moving a byte across the NUL changes
	// the hash.
	if hashParams(map[string]string{"ab": "c"}) == hashParams(map[string]string{"a": "bc"}) {
		t.Fatal("hash does not delimit names from values")
	}
	if hashParams(nil) != emptyParamsHash || hashParams(map[string]string{"a": ""}) == emptyParamsHash {
		t.Fatal("empty set hashes like a set with an empty setting")
	}
}
