# Forecasts every series of one data set with R's forecast package and writes long CSV (series, method, step, mean)
# plus the elapsed seconds per method. Usage: Rscript compare_r.R <m1|carparts> <data_dir> <out_dir> [sample]
# R_METHODS=ets,theta,arima (comma list) replaces the default methods of the set.
suppressMessages(library(forecast))
args <- commandArgs(trailingOnly = TRUE)
set <- args[1]; data_dir <- args[2]; out <- args[3]
sample_n <- if (length(args) >= 4) as.integer(args[4]) else 0L
cat("R forecast", as.character(packageVersion("forecast")), "\n")
if (set == "m1") {
  d <- read.csv(gzfile(file.path(data_dir, "m1.csv.gz")))
  d <- d[d$split == "train", ]
  d <- d[order(d$series, d$t), ]
  groups <- split(d, d$series)
  methods <- c("ets")
} else {
  d <- read.csv(gzfile(file.path(data_dir, "carparts_monthly.csv.gz")), colClasses = c("character", "integer", "numeric"))
  d <- d[order(d$series, d$t), ]
  groups <- split(d, d$series)
  groups <- groups[sapply(groups, nrow) >= 24]
  groups <- lapply(groups, function(g) { g <- g[seq_len(nrow(g) - 12), ]; g$freq <- 12; g$h <- 12; g })
  methods <- c("ets", "croston", "naive")
}
if (nzchar(Sys.getenv("R_METHODS"))) methods <- strsplit(Sys.getenv("R_METHODS"), ",")[[1]]
if (sample_n > 0 && sample_n < length(groups)) { set.seed(1); groups <- groups[sort(sample(length(groups), sample_n))] }
rows <- list(); times <- c()
for (m in methods) {
  t0 <- proc.time()[["elapsed"]]; c0 <- proc.time()
  res <- lapply(names(groups), function(s) {
    g <- groups[[s]]; y <- ts(g$value, frequency = g$freq[1]); h <- g$h[1]
    fc <- switch(m,
      ets = forecast(ets(y), h = h, PI = FALSE)$mean,
      theta = thetaf(y, h = h)$mean,
      arima = forecast(auto.arima(y), h = h)$mean,
      croston = croston(y, h = h)$mean,
      naive = naive(y, h = h)$mean)
    data.frame(series = s, method = m, step = seq_len(h), mean = as.numeric(fc))
  })
  times[m] <- proc.time()[["elapsed"]] - t0
  c1 <- proc.time(); cat(sprintf("R %s: CPU %.1f s\n", m, c1[["user.self"]] + c1[["sys.self"]] - c0[["user.self"]] - c0[["sys.self"]]))
  rows[[m]] <- do.call(rbind, res)
  cat(sprintf("R %s: %d series in %.1f s\n", m, length(groups), times[m]))
}
write.csv(do.call(rbind, rows), file.path(out, paste0("r_", set, ".csv")), row.names = FALSE)
write.csv(data.frame(method = names(times), seconds = as.numeric(times), series = length(groups)),
          file.path(out, paste0("r_", set, "_time.csv")), row.names = FALSE)
