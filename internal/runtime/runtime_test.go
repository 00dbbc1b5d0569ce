package runtime

import (
	"strings"
	"testing"
)

func TestInstanceSpecValidate(t *testing.T) {
	proc := Image{Name: "a", Kind: KindProcess, Command: []string{"x"}}
	c := func(name string) ContainerSpec { return ContainerSpec{Name: name, Image: proc} }
	many := make([]ContainerSpec, MaxContainers+1)
	for i := range many {
		many[i] = c("c" + strings.Repeat("x", i))
	}
	tests := []struct {
		name string
		spec InstanceSpec
		want string // substring of the error; empty means valid
	}{
		{"one", InstanceSpec{ID: "e/v/1", Containers: []ContainerSpec{c(PrimaryContainer)}}, ""},
		{"fifteen", InstanceSpec{ID: "e/v/1", Containers: many[:MaxContainers]}, ""},
		{"no id", InstanceSpec{Containers: []ContainerSpec{c("a")}}, "empty id"},
		{"nul in id", InstanceSpec{ID: "a\x00b", Containers: []ContainerSpec{c("a")}}, "NUL"},
		{"no containers", InstanceSpec{ID: "x"}, "no containers"},
		{"sixteen", InstanceSpec{ID: "x", Containers: many}, "at most 15"},
		{"empty name", InstanceSpec{ID: "x", Containers: []ContainerSpec{c("")}}, "DNS label"},
		{"bad name", InstanceSpec{ID: "x", Containers: []ContainerSpec{c("a/b")}}, "DNS label"},
		{"leading dash", InstanceSpec{ID: "x", Containers: []ContainerSpec{c("-a")}}, "DNS label"},
		{"duplicate", InstanceSpec{ID: "x", Containers: []ContainerSpec{c("a"), c("a")}}, "used twice"},
		{"mixed kinds", InstanceSpec{ID: "x", Containers: []ContainerSpec{c("a"), {Name: "b", Image: Image{Kind: KindDocker, Ref: "r"}}}}, "cannot run together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
