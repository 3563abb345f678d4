module readygate.test/pause

go 1.24
