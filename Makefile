.PHONY: build test demo lint
build:
	go build -o bin/sweeper ./cmd/sweeper
# The test command (the same line README.md and .ci/run give).
test:
	go test -race -count=1 ./...
demo:
	scripts/demo.sh
lint:
	gofmt -l $$(git ls-files '*.go'); go vet ./...; go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
