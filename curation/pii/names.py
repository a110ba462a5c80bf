"""Word lists for the rule-based name detector: common given names (English, German, French, Spanish,
Italian, Dutch, and frequent names from elsewhere) and capitalised words that end a name."""

from __future__ import annotations

_GIVEN = """
    Aaron Abigail Adam Adrián Agnieszka Ahmed Ahmet Aisha Akira Alain Alba Albert Alberto Alejandro
    Alessandra Alessandro Alessia Alexander Alexei Alexis Alfie Ali Alice Amanda Amber Amelia Amina Amit
    Amy Ana Andrea Andreas Andrew Andriy André Andrés Angela Anil Anja Anke Ann Anna Annemiek Anouk
    Anthony Antoine Antonio Archie Arjun Arthur Ashley Aurora Aurélie Austin Ava Ayşe Barbara Bas
    Beatrice Beatriz Ben Benjamin Bernard Bernd Betty Beverly Birgit Björn Bram Brandon Brenda Brian
    Brigitte Brittany Camille Can Carl Carlos Carmen Carol Carolyn Caterina Catherine Charles Charlie
    Charlotte Cheryl Chiara Chloe Chloé Christian Christina Christine Christoph Christophe Christopher
    Claire Claudia Cornelis Cristina Cynthia Céline Daan Daniel Danielle David Davide Deborah Debra
    Deepak Denise Dennis Diana Diane Diego Dieter Dirk Dmitri Dolores Donald Donna Doris Dorothy Edward
    Eleanor Elena Elias Elif Elisa Elizabeth Ella Ellie Emanuele Emily Emine Emma Emre Enrique Eric
    Ethan Eva Evelyn Ewa Fabian Fabio Fatima Federica Federico Felix Femke Fernando Finn Fleur Florian
    Frances Francesca Francesco Francisco Frank François Françoise Freddie Freya Frédéric Gabriel
    Gabriele Gary George Gerald Gerhard Gerrit Ginevra Giorgia Giorgio Giovanna Giovanni Gisela Giulia
    Giuseppe Gloria Grace Gregory Guillaume Günter Hannah Hans Harold Harry Hassan Heather Heike Heinz
    Helen Helga Helmut Hendrik Henry Hiro Holger Holly Horst Hugo Hui Hussein Ibrahim Igor Iker Ilaria
    Ingrid Inès Irene Irina Iris Isaac Isabel Isabella Isabelle Isla Ivan Jack Jacob Jacobus Jacqueline
    Jacques Jade Jakub James Jan Jane Janet Janice Jason Javier Jean Jeffrey Jennifer Jens Jeremy Jerry
    Jesse Jessica Jesús Joan Joanna Joaquín Joe Johanna Johannes John Jonas Jonathan Joost Jorge Joseph
    Joshua José Joyce Juan Judith Judy Jules Julia Julie Julien Juliette Jun Justin Jürgen Kacper Kai
    Karen Karin Karl Katarzyna Kate Kateryna Katharina Katherine Kathleen Kathryn Kayla Keith Kelly
    Kenji Kenneth Kerstin Kevin Kimberly Klaus Koen Krzysztof Kyle Larry Lars Laura Lauren Laurent
    Lawrence Layla Lea Lena Leo Leon Leonardo Leonie Levi Li Liam Lieke Lily Lina Linda Lisa Logan
    Lorenzo Lori Lotte Louis Louise Luca Lucas Lucia Lucy Lucía Luigi Luis Lukas Luke Léa Maarten
    Madison Magdalena Manfred Manon Manuel Marcel Marco Margaret Margaux Maria Mariam Marie Marilyn
    Mario Mark Markus Marloes Marta Martha Martina Martín Mary María Mason Massimo Mateo Mathieu
    Mathilde Matteo Matthew Matthias Maud Max Maxime Maximilian Megan Mehmet Melissa Mercedes Mia
    Michael Michel Michelle Miguel Mila Milan Ming Mohammed Monika Monique Moritz Muhammad Murat Mustafa
    Nancy Natalia Natalie Nathalie Nathan Nicholas Nicolas Nicole Niels Niklas Nikolai Noah Noor Nuria
    Oleksandr Olga Oliver Olivia Olivier Omar Oscar Owen Pablo Pamela Paola Paolo Patricia Patrick Paul
    Paula Pauline Pedro Peter Petra Philippe Pierre Pieter Pietro Pilar Piotr Poppy Priya Quentin Rachel
    Rafael Raj Ralf Ramón Raphaël Raquel Ravi Raymond Raúl Rebecca Renate Riccardo Richard Rik Robert
    Roberto Rocío Roger Romain Ronald Rosa Rose Ruben Ruby Ruth Ryan Saar Sabine Salvatore Samantha
    Samuel Sander Sandra Sandrine Sanne Santiago Sara Sarah Scott Sean Sebastian Sem Serena Sergei
    Sergio Sharon Shirley Silke Silvia Simone Sofia Sofía Sophia Sophie Stefan Stefanie Stefano
    Stephanie Stephen Steven Stijn Stéphane Stéphanie Sunil Susan Susanne Sven Svetlana Sylvie Sébastien
    Tatiana Teresa Tess Theo Theresa Thierry Thijs Thomas Théo Tim Timothy Tobias Tomasz Tommaso Torsten
    Tyler Ursula Uwe Valentina Valeria Valérie Vicente Victoria Vincent Vincenzo Virginia Vladimir
    Walter Wei Werner Willem Willemijn William Wolfgang Wouter Yan Yuki Yusuf Yves Zachary Zainab Zoe
    Zoë Álvaro Ángel Élodie Émilie Éric
"""
# Capitalised words that follow a given name without being a surname ("Grace Period", "Victoria Station").
_NOT_SURNAMES = """
    AG Airport Avenue Award Bank Beach Benz Bridge Castle Center Centre Church College Company Corp Cup
    Day Foundation Garden Gardens GmbH Group Hall Hospital Hotel House Inc Institute Island Lake Lane
    Ltd Mountain Museum Park Prize River Road SA School Secret Square Station Street Theater Theatre
    Tower University Valley Watch
"""
GIVEN_NAMES = frozenset(_GIVEN.split())
NOT_SURNAMES = frozenset(_NOT_SURNAMES.split())
