module github.com/sipnat/sipnat/internal/sipgobench

go 1.24.0

replace github.com/sipnat/sipnat => ../..

require (
	github.com/emiago/sipgo v1.7.2
	github.com/sipnat/sipnat v0.0.0-00010101000000-000000000000
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	github.com/gobwas/ws v1.3.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.16.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
)
