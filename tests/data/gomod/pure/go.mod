module example.test/purefixture

go 1.21
