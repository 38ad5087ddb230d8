module example.test/cgofixture

go 1.21
