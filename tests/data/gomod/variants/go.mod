module example.test/variants

go 1.21
