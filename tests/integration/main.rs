mod detectors;
