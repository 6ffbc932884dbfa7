module github.com/strongroom-kms/strongroom

go 1.26.8
