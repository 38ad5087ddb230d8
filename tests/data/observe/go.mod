module example.test/observe

go 1.21
